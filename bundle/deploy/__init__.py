"""Deployment: finding studies, batch inference with per-study fault isolation, DICOM output, export backends."""
