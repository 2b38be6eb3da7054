"""Business rules between the routes and the repositories."""
