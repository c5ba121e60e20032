"""The paper's training recipe for BANet: python -m training.train, python -m training.evaluate."""
