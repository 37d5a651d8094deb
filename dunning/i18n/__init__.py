"""Languages: catalogs and locale choice, money and date formats, the gettext workflow."""
