// Annulus 0.5 <= r <= 1 centred at the origin: curved boundaries only.
// Tags: 1 outer circle, 2 inner circle; surface 1.
DefineConstant[ lc = {0.08, Name "lc"} ];
Point(1) = {0, 0, 0, lc};
Point(2) = {1, 0, 0, lc};   Point(3) = {0, 1, 0, lc};
Point(4) = {-1, 0, 0, lc};  Point(5) = {0, -1, 0, lc};
Point(6) = {0.5, 0, 0, lc}; Point(7) = {0, 0.5, 0, lc};
Point(8) = {-0.5, 0, 0, lc}; Point(9) = {0, -0.5, 0, lc};
Circle(1) = {2, 1, 3}; Circle(2) = {3, 1, 4}; Circle(3) = {4, 1, 5}; Circle(4) = {5, 1, 2};
Circle(5) = {6, 1, 7}; Circle(6) = {7, 1, 8}; Circle(7) = {8, 1, 9}; Circle(8) = {9, 1, 6};
Curve Loop(1) = {1, 2, 3, 4};
Curve Loop(2) = {5, 6, 7, 8};
Plane Surface(1) = {1, 2};
Physical Curve(1) = {1, 2, 3, 4};
Physical Curve(2) = {5, 6, 7, 8};
Physical Surface(1) = {1};
