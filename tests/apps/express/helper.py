VALUE = 'one'
