"""Dataset layer: the episode format (``format``), in-memory episodes (``episode``), the atomic
writer (``writer``), the lazy reader (``reader``), checks (``validate``) and the HTML viewer
(``viewer``)."""
