"""HTP: Hierarchical Trace-and-Project export."""
