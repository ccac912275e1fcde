"""Geometry: marching cubes, point clouds, mesh IO, metrics and headless mesh pictures."""
