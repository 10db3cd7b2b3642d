// Turbine blade, 2D academic model (units: mm), for simulations/blade.
//
// The section lies in the plane of rotation: x is the axial (lateral) direction, y the
// radial (span) direction, the rotation axis is normal to the plane at radius r0 below the
// root. The outline is a cambered NACA-4-digit-like profile whose chord runs along y: the
// thick "nose" part is cut by the straight root edge y = 0 (xi = xi0), the thin "trailing"
// part is cut by a short straight tip edge (xi = xi1). Three cooling channels: an elliptic
// one (major axis along y) and two circular ones, on the camber line, their radii a fixed
// fraction of the local half thickness.
//
//   x(xi) = c (y_c(xi) +- y_t(xi)),  y(xi) = c (xi - xi0),  xi0 <= xi <= xi1,
//   y_t = 5 tau (0.2969 sqrt(xi) - 0.1260 xi - 0.3516 xi^2 + 0.2843 xi^3 - 0.1015 xi^4),
//   y_c = m/p^2 (2 p xi - xi^2) (xi < p),  m/(1-p)^2 (1 - 2p + 2 p xi - xi^2) (xi >= p).
//
// Tags: 1 root (y = 0, clamped), 2 outer surface (both sides and the tip),
//       3 cooling holes (all three); surface 1.
// lc: size on the outer surface and inside; lc_hole: size on the holes.
DefineConstant[ lc = {2.0, Name "lc"}, lc_hole = {1.0, Name "lc_hole"} ];

// c, tau, m, pc, xi0 are read by simulations/blade/blade.py (blade_outline, the hot spots'
// suction side): keep each a plain `name = number;` line.
c = 40.0;      // chord, along the radial direction y
tau = 0.28;    // thickness / chord
m = 0.06;      // camber
pc = 0.4;      // position of the maximal camber
xi0 = 0.12;    // root cut
xi1 = 0.97;    // tip cut
N = 20;        // spline points per side

pu[] = {};
pl[] = {};
For i In {0:N}
  xi = xi0 + (xi1 - xi0) * (1 - Cos(Pi * i / N)) / 2;
  yt = 5 * tau * (0.2969 * Sqrt(xi) - 0.1260 * xi - 0.3516 * xi^2 + 0.2843 * xi^3 - 0.1015 * xi^4);
  If (xi < pc)
    yc = m / pc^2 * (2 * pc * xi - xi^2);
  Else
    yc = m / (1 - pc)^2 * (1 - 2 * pc + 2 * pc * xi - xi^2);
  EndIf
  p = newp; Point(p) = {c * (yc + yt), c * (xi - xi0), 0, lc}; pu[] += {p};
  p = newp; Point(p) = {c * (yc - yt), c * (xi - xi0), 0, lc}; pl[] += {p};
EndFor

Spline(1) = pu[];                 // suction side, root -> tip
Spline(2) = pl[];                 // pressure side, root -> tip
Line(3) = {pl[0], pu[0]};         // root, y = 0
Line(4) = {pu[N], pl[N]};         // tip
Curve Loop(1) = {3, 1, 4, -2};

// cooling holes: centre on the camber line at xi_h, radius f * c * y_t(xi_h)
xh[] = {0.30, 0.50, 0.70};
fh[] = {0.35, 0.35, 0.35};
aspect[] = {1.5, 1.0, 1.0};       // semi-axis along y / semi-axis along x
holes[] = {};
For k In {0:2}
  xi = xh[k];
  yt = 5 * tau * (0.2969 * Sqrt(xi) - 0.1260 * xi - 0.3516 * xi^2 + 0.2843 * xi^3 - 0.1015 * xi^4);
  If (xi < pc)
    yc = m / pc^2 * (2 * pc * xi - xi^2);
  Else
    yc = m / (1 - pc)^2 * (1 - 2 * pc + 2 * pc * xi - xi^2);
  EndIf
  cx = c * yc; cy = c * (xi - xi0);
  rb = fh[k] * c * yt; ra = aspect[k] * rb;
  pcen = newp; Point(pcen) = {cx, cy, 0, lc_hole};
  p1 = newp; Point(p1) = {cx + rb, cy, 0, lc_hole};
  p2 = newp; Point(p2) = {cx, cy + ra, 0, lc_hole};
  p3 = newp; Point(p3) = {cx - rb, cy, 0, lc_hole};
  p4 = newp; Point(p4) = {cx, cy - ra, 0, lc_hole};
  If (aspect[k] == 1.0)
    l1 = newc; Circle(l1) = {p1, pcen, p2};
    l2 = newc; Circle(l2) = {p2, pcen, p3};
    l3 = newc; Circle(l3) = {p3, pcen, p4};
    l4 = newc; Circle(l4) = {p4, pcen, p1};
  Else
    // Ellipse = {start, centre, point on the major axis, end}; the major axis is along y
    l1 = newc; Ellipse(l1) = {p1, pcen, p2, p2};
    l2 = newc; Ellipse(l2) = {p2, pcen, p2, p3};
    l3 = newc; Ellipse(l3) = {p3, pcen, p4, p4};
    l4 = newc; Ellipse(l4) = {p4, pcen, p4, p1};
  EndIf
  cl = newcl; Curve Loop(cl) = {l1, l2, l3, l4};
  holes[] += {cl};
  hc[] += {l1, l2, l3, l4};
EndFor

Plane Surface(1) = {1, holes[]};
Physical Curve(1) = {3};
Physical Curve(2) = {1, 2, 4};
Physical Curve(3) = {hc[]};
Physical Surface(1) = {1};
