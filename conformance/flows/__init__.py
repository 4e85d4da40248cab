"""Protocol steps a check performs: discovery, OAuth, UDAP, CCDE, Carequality, scopes; the Target."""
