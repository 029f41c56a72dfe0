"""The picture: probing, decoding, scene detection, the model's frames, timecode, EDL, proxy and mux."""
