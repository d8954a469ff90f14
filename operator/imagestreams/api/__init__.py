"""API types: the ImageStream resource (image.openshift.io/v1) and the operator's settings."""
