"""The one web server (`dunning serve`): each route module adds its routes to one Starlette app."""
