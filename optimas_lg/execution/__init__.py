"""Running the user's graph: a dataset under one knob assignment (``runner``), every node
call recorded to the store (``recorder``), and one node or the rest of the graph run
again from a recorded input (``replay``)."""
