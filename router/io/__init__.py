"""The file edges of the router: reading the user's files and writing outputs."""
