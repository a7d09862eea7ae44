"""The refund log (see the refunds issue); empty for now."""
