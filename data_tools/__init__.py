"""Annotation tools: the dataset format, importers, split / resize / stats / export commands."""
from .dataset import Dataset, DatasetError, Revision, Sample
from .importers import ImportReport, Problem, import_into

__all__ = ["Dataset", "DatasetError", "ImportReport", "Problem", "Revision", "Sample", "import_into"]
