"""Helpers shared by the dashboard tests."""


def find_component(component, id_):
    """The component with ``id_`` in a /_dash-layout JSON tree, or None."""
    if isinstance(component, dict):
        if component.get("props", {}).get("id") == id_:
            return component
        for v in component.get("props", {}).values():
            found = find_component(v, id_)
            if found is not None:
                return found
    elif isinstance(component, list):
        for c in component:
            found = find_component(c, id_)
            if found is not None:
                return found
    return None
