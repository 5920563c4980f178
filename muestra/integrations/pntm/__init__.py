"""Chile's national sample platform API (PNTM), accepted as labs already use it. See docs/pntm.md."""
