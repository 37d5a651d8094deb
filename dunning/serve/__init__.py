"""The one web server of `dunning serve`: the settlement and update links' landing."""
