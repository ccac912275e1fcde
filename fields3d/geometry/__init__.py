"""Geometry: marching cubes, point clouds, mesh IO, metrics, the Poisson baseline and headless pictures."""

from .marching_cubes import marching_cubes, mesh_field
from .mesh_io import load_mesh, save_mesh
from .metrics import format_metrics, mesh_metrics
from .outliers import remove_outliers
from .pictures import render_mesh, render_views, save_mesh_png
from .pointcloud import Normalization, PointCloud, load_point_cloud, sample_mesh

__all__ = [
    "Normalization",
    "PointCloud",
    "format_metrics",
    "load_mesh",
    "load_point_cloud",
    "marching_cubes",
    "mesh_field",
    "mesh_metrics",
    "remove_outliers",
    "render_mesh",
    "render_views",
    "sample_mesh",
    "save_mesh",
    "save_mesh_png",
]
