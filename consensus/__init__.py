"""The sans-IO Tendermint core and the deterministic cluster simulator (DESIGN 4).

Built by the consensus issue; this package may import only `sequencer`.
"""
