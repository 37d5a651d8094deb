"""`dunning studio`: a local web app that shows every email as its templates and catalogs are saved."""
