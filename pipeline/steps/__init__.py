"""The release steps, in the order make release runs them: data -> train (model_specs, requirements,
team_code) -> versioning/planning -> gate -> build -> publish (uploading, intent) -> release_records;
release.py runs them all, faults.py injects failures between them for the reliability tests."""
