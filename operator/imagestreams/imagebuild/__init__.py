"""Build the operator image without a container engine: pinned Debian packages, locked wheels, same digest."""
