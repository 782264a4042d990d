import builtins
builtins.MOD_WSGI_RS_IMPORTED = getattr(builtins, 'MOD_WSGI_RS_IMPORTED', 0) + 1
