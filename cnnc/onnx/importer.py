def load_model(path):
    raise RuntimeError("not yet")
