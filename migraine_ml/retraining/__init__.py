"""Retraining: labelled feedback in, a challenger trained, promoted only when it is better."""
