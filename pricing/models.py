"""The price catalogue (see the pricing issue); empty for now."""
