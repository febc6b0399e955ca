"""The gradient landscape in logit space: saturation, dead zones, curvature."""
