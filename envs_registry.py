"""The one list of textgym environment ids (filled in by the environment suite)."""
