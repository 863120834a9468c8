"""mailbot: reads a contact inbox, registers people for an event, answers them."""
