"""Line-transcribed pages in PAGE XML or ALTO: read into an IAM root, and character boxes written back."""
