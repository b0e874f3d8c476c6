"""The notebook interface: magics (`%load_ext nbflow`), the in-kernel scheduler, and widgets."""
