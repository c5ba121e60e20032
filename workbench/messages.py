"""What a visitor is told when their input cannot be used: a message in the page, no traceback in the server's log."""
from __future__ import annotations

import gradio as gr


def user_error(message: str) -> gr.Error:
    """An error for the visitor's own input or order of steps (raise it); unexpected failures still log a traceback."""
    return gr.Error(message, print_exception=False)
