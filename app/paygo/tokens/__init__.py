"""OpenPAYGO tokens: the fast pure codec (``codec``) and a device keypad simulator (``keypad``)."""
