"""What the pipeline shows people: make versions and make diff (registry), the channels' history
(channels), and data text made safe for the model card's Markdown (markdown_text)."""
