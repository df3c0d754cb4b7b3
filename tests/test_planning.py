"""envs.planning: inflation, A* + string pulling, path length (numpy only, no simulation)."""
import math

import numpy as np
import pytest

from envs.planning import inflate, path_length, plan_path, segment_free

RES = 0.1


def brute_inflate(grid: np.ndarray, radius_m: float, res: float) -> np.ndarray:
    r = int(math.floor(radius_m / res + 1e-9))
    out = grid.copy()
    for y, x in zip(*np.nonzero(grid)):
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                if dx * dx + dy * dy <= r * r and 0 <= y + dy < grid.shape[0] and 0 <= x + dx < grid.shape[1]:
                    out[y + dy, x + dx] = True
    return out


def walled(ny: int = 200, nx: int = 200) -> np.ndarray:
    g = np.zeros((ny, nx), dtype=bool)
    g[0, :] = g[-1, :] = g[:, 0] = g[:, -1] = True
    return g


def assert_path_free(path: np.ndarray, grid: np.ndarray, origin: tuple[float, float]) -> None:
    for a, b in zip(path[:-1], path[1:]):
        assert segment_free(grid, RES, origin, a, b), (a, b)


@pytest.mark.parametrize("radius", [0.0, 0.05, 0.1, 0.25, 0.6, 1.0])
def test_inflate_matches_a_disk_dilation(radius):
    rng = np.random.default_rng(0)
    grid = rng.random((37, 53)) < 0.02
    grid[0, 5] = grid[-1, -1] = True  # occupied cells on the border
    before = grid.copy()
    out = inflate(grid, radius, RES)
    assert out.dtype == bool and out.shape == grid.shape
    np.testing.assert_array_equal(out, brute_inflate(grid, radius, RES))
    np.testing.assert_array_equal(grid, before)  # input untouched


def test_inflate_empty_and_full():
    assert not inflate(np.zeros((10, 10), bool), 0.5, RES).any()
    assert inflate(np.ones((10, 10), bool), 0.5, RES).all()


def test_path_length():
    assert path_length(None) == 0.0
    assert path_length(np.array([[1.0, 2.0]])) == 0.0
    assert path_length(np.array([[0.0, 0.0], [3.0, 4.0], [3.0, 0.0]])) == pytest.approx(9.0)


def test_free_straight_line_is_returned_as_is():
    g = walled()
    origin = (-9.95, -9.95)
    p = plan_path(g, RES, origin, (-5.0, 1.0), (6.0, -2.0))
    np.testing.assert_allclose(p, [[-5.0, 1.0], [6.0, -2.0]])


def test_path_around_a_wall_is_near_the_any_angle_optimum():
    # A 20 m arena (origin at cell centre (-9.95, -9.95)); a wall x in [-0.2, 0.2] from
    # y = -4 up to the top edge: the way from (-5, 5) to (5, 5) goes round its end (0, -4).
    g = walled()
    origin = (-9.95, -9.95)
    xs = origin[0] + RES * np.arange(200)
    ys = origin[1] + RES * np.arange(200)
    gx, gy = np.meshgrid(xs, ys)
    g |= (np.abs(gx) <= 0.2) & (gy >= -4.0)
    start, goal = (-5.0, 5.0), (5.0, 5.0)
    path = plan_path(g, RES, origin, start, goal)
    assert path is not None
    np.testing.assert_allclose(path[0], start)
    np.testing.assert_allclose(path[-1], goal)
    assert_path_free(path, g, origin)
    optimum = 2 * math.hypot(5.0, 9.0)  # via the wall's end
    assert optimum <= path_length(path) <= optimum * 1.02
    assert len(path) <= 6  # string pulling leaves only a few corners


def test_occupied_start_and_goal_are_moved_to_the_nearest_free_cell():
    g = np.zeros((60, 60), dtype=bool)
    g[20:40, 20:40] = True  # a block
    g = inflate(g, 0.3, RES)
    origin = (0.0, 0.0)
    start, goal = (2.1, 3.0), (3.9, 3.0)  # just inside the left and right faces
    path = plan_path(g, RES, origin, start, goal)
    assert path is not None
    np.testing.assert_allclose(path[0], start)
    np.testing.assert_allclose(path[-1], goal)
    inner = path[1:-1]
    for p in inner:  # all waypoints but the true ends lie in free cells
        iy, ix = int(round(p[1] / RES)), int(round(p[0] / RES))
        assert not g[iy, ix]
    assert path_length(path) < 2 * 3.0  # round the block, not round the map


def test_no_path_returns_none():
    g = np.zeros((50, 50), dtype=bool)
    g[:, 25] = True  # a full-height wall splits the map
    assert plan_path(g, RES, (0.0, 0.0), (1.0, 2.5), (4.0, 2.5)) is None
    assert plan_path(np.ones((10, 10), bool), RES, (0.0, 0.0), (0.2, 0.2), (0.8, 0.8)) is None


def test_diagonal_moves_do_not_squeeze_between_touching_corners():
    g = np.zeros((20, 20), dtype=bool)
    g[:10, 10] = True
    g[10:, 11] = True  # two walls meeting only at a corner: no gap to pass
    assert plan_path(g, RES, (0.0, 0.0), (0.2, 1.0), (1.8, 1.0)) is None


def test_maze_path_is_free():
    # A 200 x 200 grid of staggered walls: the path snakes the whole map.
    g = np.zeros((200, 200), dtype=bool)
    for k in range(20, 180, 40):
        g[:180, k] = True
        g[20:, k + 20] = True
    origin = (0.0, 0.0)
    path = plan_path(g, RES, origin, (0.5, 10.0), (19.5, 10.0))
    assert path is not None
    assert_path_free(path, g, origin)
    assert path_length(path) > 8 * 16.0  # it really went round every wall


def test_detour_around_a_long_wall_in_a_cluttered_arena():
    rng = np.random.default_rng(1)
    g = walled()
    for _ in range(30):
        y, x = rng.integers(10, 185, 2)
        g[y:y + 10, x:x + 10] = True
    g[20:200, 100] = True  # a long wall forcing a detour
    g = inflate(g, 0.4, RES)
    origin = (-9.95, -9.95)
    path = plan_path(g, RES, origin, (-9.0, 9.0), (9.0, 9.0))
    assert path is not None
    assert_path_free(path, g, origin)
    assert path_length(path) > 18.0 + 2 * 1.0  # had to go down and round the wall's end
