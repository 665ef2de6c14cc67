"""How serve runs uvicorn: connection bounds, worker processes, sockets, malloc arenas."""
