"""HTTP edge: thin blueprints that parse a request, call the domain and render a reply."""
