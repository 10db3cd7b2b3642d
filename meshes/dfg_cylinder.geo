// DFG flow past a cylinder (Schaefer & Turek 1996): channel [0, 2.2] x [0, 0.41],
// cylinder of radius 0.05 centred at (0.2, 0.2).
// Tags: 1 inflow (x = 0), 2 outflow (x = 2.2), 3 walls (y = 0, 0.41), 4 cylinder; surface 1.
// lc: size in the far field; lc_cyl: size on the cylinder; lc_wake (if > 0): size in the
// wake box [0.1, wake_end] x [0.1, 0.31], growing to lc over 0.1 outside it.
DefineConstant[ lc = {0.04, Name "lc"}, lc_cyl = {0.008, Name "lc_cyl"}, lc_wake = {0, Name "lc_wake"},
                wake_end = {1.0, Name "wake_end"} ];
Point(1) = {0, 0, 0, lc};
Point(2) = {2.2, 0, 0, lc};
Point(3) = {2.2, 0.41, 0, lc};
Point(4) = {0, 0.41, 0, lc};
Point(5) = {0.2, 0.2, 0, lc_cyl};
Point(6) = {0.25, 0.2, 0, lc_cyl};
Point(7) = {0.2, 0.25, 0, lc_cyl};
Point(8) = {0.15, 0.2, 0, lc_cyl};
Point(9) = {0.2, 0.15, 0, lc_cyl};
Line(1) = {1, 2}; Line(2) = {2, 3}; Line(3) = {3, 4}; Line(4) = {4, 1};
Circle(5) = {6, 5, 7}; Circle(6) = {7, 5, 8}; Circle(7) = {8, 5, 9}; Circle(8) = {9, 5, 6};
Curve Loop(1) = {1, 2, 3, 4};
Curve Loop(2) = {5, 6, 7, 8};
Plane Surface(1) = {1, 2};
Physical Curve(1) = {4};
Physical Curve(2) = {2};
Physical Curve(3) = {1, 3};
Physical Curve(4) = {5, 6, 7, 8};
Physical Surface(1) = {1};
If (lc_wake > 0)
  Field[1] = Box;
  Field[1].VIn = lc_wake;
  Field[1].VOut = lc;
  Field[1].XMin = 0.1;
  Field[1].XMax = wake_end;
  Field[1].YMin = 0.1;
  Field[1].YMax = 0.31;
  Field[1].Thickness = 0.1;
  Background Field = 1;
EndIf
