"""The ``audiox-studio`` command line and the tools around the flows: doctor, lineage, the drop watcher."""
