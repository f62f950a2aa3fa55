"""Starting from existing weights: references (``refs``, no torch), reading state dicts offline-safely
(``load``: torchvision's hub cache, ``.pt``/``.pth`` with ``weights_only``, safetensors, cnndsl
checkpoints and run directories) and matching them to a model by name (``match``: strict by
default, a table of missing / unexpected / mis-shaped keys, partial only when asked)."""
