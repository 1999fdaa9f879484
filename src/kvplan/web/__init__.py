"""The web view: `kvplan serve` (optional extra kvplan[web])."""
