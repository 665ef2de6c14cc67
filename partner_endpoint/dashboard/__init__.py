"""The account owners' dashboard: views, templates, session authentication, forms."""
