"""Quality: damage rates with delivered order lines as the denominator, and incidents raised
by a statistical test of a batch's (or a pickup point's) claim rate against its SKU."""
