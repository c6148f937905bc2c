"""Call park: orbits per tenant, their lamps and the park application."""
