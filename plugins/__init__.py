"""Built-in rdmbench plugins, registered through the `rdmbench` entry-point group like any third-party plugin."""
