"""The risk engine's documents: the `risk evaluate` input (`document`), the status document out
(`output`), and proposed changes applied to a book (`whatif`). Pure; the math itself is in
`aggregator.valuation` and `aggregator.margin`."""
