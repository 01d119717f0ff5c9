"""The retraining loop's service side: audit reviews of auto-approved claims (labels where
the machine decides) and the export of reviewer-labelled photos for training."""
