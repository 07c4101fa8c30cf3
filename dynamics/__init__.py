"""rldyn's dynamical-systems package: PLRNN reconstruction and solver-regularized neural ODEs/SDEs."""
