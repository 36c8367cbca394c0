"""The application layer: wires engine, queue and storage together for every front end."""
