"""BANet Workbench: the Gradio app around the banet library."""
