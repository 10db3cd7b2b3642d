// A non-convex pentagon-like polygon with a quadrilateral hole: straight segments,
// corners (convex and re-entrant) and two boundary loops.
// Tags: 1 outer boundary, 2 hole boundary; surface 1.
DefineConstant[ lc = {0.06, Name "lc"} ];
Point(1) = {0.0, 0.0, 0, lc};
Point(2) = {1.6, 0.0, 0, lc};
Point(3) = {1.6, 0.7, 0, lc};
Point(4) = {1.0, 0.55, 0, lc};
Point(5) = {0.8, 1.2, 0, lc};
Point(6) = {0.0, 1.0, 0, lc};
Line(1) = {1, 2}; Line(2) = {2, 3}; Line(3) = {3, 4};
Line(4) = {4, 5}; Line(5) = {5, 6}; Line(6) = {6, 1};
Point(11) = {0.3, 0.3, 0, lc};
Point(12) = {0.7, 0.25, 0, lc};
Point(13) = {0.65, 0.6, 0, lc};
Point(14) = {0.35, 0.65, 0, lc};
Line(11) = {11, 12}; Line(12) = {12, 13}; Line(13) = {13, 14}; Line(14) = {14, 11};
Curve Loop(1) = {1, 2, 3, 4, 5, 6};
Curve Loop(2) = {11, 12, 13, 14};
Plane Surface(1) = {1, 2};
Physical Curve(1) = {1, 2, 3, 4, 5, 6};
Physical Curve(2) = {11, 12, 13, 14};
Physical Surface(1) = {1};
